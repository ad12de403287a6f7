"""polylab.bus"""
