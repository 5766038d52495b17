"""Plumbing every workflow shares: locks, device, precision, threads, distributed set-up."""
