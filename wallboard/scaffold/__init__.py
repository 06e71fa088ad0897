"""`wallboard new-plugin`: writes a ready-to-install source plugin package."""
