"""The demo: a generated catalog (products, rendered shots, simulated customer photos), the demo
model's training, and `vitrine demo`, which ingests the catalog and serves the app."""
