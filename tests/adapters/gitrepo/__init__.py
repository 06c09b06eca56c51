"""Tests of the git adapter (gitops.gitrepo) against real git repositories and servers."""
