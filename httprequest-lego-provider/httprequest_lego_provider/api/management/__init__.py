"""Management commands run by operators and the charm's actions."""
