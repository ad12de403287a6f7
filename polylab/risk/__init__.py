"""polylab.risk"""
