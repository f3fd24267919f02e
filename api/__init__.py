"""The web app and JSON API (customer, operator and vendor surfaces), and the `vitrine` command."""
