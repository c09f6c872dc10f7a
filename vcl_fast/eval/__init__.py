"""Evaluation: VCSL/VCDB segment metrics, VSC22 segment micro-AP, classical localizers."""
