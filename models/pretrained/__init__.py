"""The shipped default re-id checkpoint (see models.default_model)."""
