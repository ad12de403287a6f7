"""polylab.research"""
