"""memories"""
