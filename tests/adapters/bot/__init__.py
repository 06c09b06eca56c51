"""Tests of the pull-request bot (issue 7)."""
