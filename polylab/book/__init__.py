"""polylab.book"""
