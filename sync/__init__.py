"""The worker's cycle, independent of how it is scheduled or wired: gather -> decide -> act -> checkpoint."""
