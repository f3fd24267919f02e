"""Who may come in: the closed-beta waitlist, invitations, and applications to work as an operator or vendor."""
