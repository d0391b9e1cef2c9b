"""Task streams (data manager, LAMDA-PILOT style)."""
