"""The app on this PC: stage a board root (usr/ as on the module), boot it on either interpreter."""
