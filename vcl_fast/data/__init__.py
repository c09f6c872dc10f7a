"""Data: dataset formats (labels, pair lists, predictions), typed feature records and stores."""
