"""The paper's findings (sections 4.2-4.4, Figure 1) as data and rules, decided from our results: holds,
contradicted or undecided, each with its effect and bootstrap interval (see findings.py, rules.py, decide.py)."""
