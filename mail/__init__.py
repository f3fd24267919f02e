"""E-mail: messages rendered from templates (a plain-text and an HTML part each) and the outboxes that deliver them."""
