"""Templates and static files of the TV board, shipped inside the wheel."""
