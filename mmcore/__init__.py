"""mmcore: a simulated OS memory manager with hook points for policy programs."""
