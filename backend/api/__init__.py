"""The HTTP application: its factory, the shared dependencies (sessions, operator and
passenger authentication), the route policy and the shapes every domain shares. Each
domain's routes are in its own ``endpoints`` module.
"""
