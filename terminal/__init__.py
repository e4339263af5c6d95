"""sscard terminal: the transaction core (``terminal.core``), the Textual UI
(``terminal.ui``) and the ``sscard`` command line (``terminal.cli``)."""
