"""Plumbing every workflow shares: device, precision, threads, locks, distributed set-up."""
