"""Plumbing every workflow shares: output folders, locks, precision, device, threads, distributed set-up."""
