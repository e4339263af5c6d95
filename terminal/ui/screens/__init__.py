"""The screens of the terminal: one per mode, plus small dialogs."""
