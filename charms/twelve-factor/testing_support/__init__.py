"""Test support shared by the charms' tests; never packed into a charm (it is not under lib/)."""
