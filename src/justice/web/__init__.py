"""The web app (`justice serve`): the prison officers' safety service, and later the explorer and portal."""
