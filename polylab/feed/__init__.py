"""polylab.feed"""
