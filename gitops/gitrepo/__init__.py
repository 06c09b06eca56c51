"""The git adapter: the only package that imports ``git`` (gitpython).

``checkout`` clones a fleet repository at a ref into a directory for one-shot commands.
"""
