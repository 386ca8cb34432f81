"""Storage on the module's flash: the persistent store-and-forward queue."""
