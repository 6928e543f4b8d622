"""Reading samples out of Prometheus's text format in tests."""
from __future__ import annotations


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus's text format (0 if absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        sample, _, value = line.rpartition(" ")
        found_name, _, found_labels = sample.partition("{")
        if found_name == name and ",".join(sorted(found_labels.rstrip("}").split(","))) == wanted:
            return float(value)
    return 0.0
