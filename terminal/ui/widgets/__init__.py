"""Reusable widgets of the terminal, grouped by the area of the screen they show."""
