"""Evaluation: VCSL/VCDB segment metrics, VSC22 segment micro-AP, image copy detection metrics, classical localizers."""
