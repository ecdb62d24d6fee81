"""ODRL policies: a pure evaluator over a pinned ODRL 2.2 and DPV vocabulary."""
