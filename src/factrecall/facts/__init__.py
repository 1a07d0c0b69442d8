"""Users' own facts (beyond the paper): fact tables from CSV/JSONL (``table``), the scaling laws and the
capacity planner that predicts, trains and verifies a model for a table, and queries in names.
"""
