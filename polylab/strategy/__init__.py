"""polylab.strategy"""
