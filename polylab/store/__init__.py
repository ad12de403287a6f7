"""polylab.store"""
