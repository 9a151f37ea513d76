"""Persistence: the only package with SQL or Redis calls. Tables, repositories, migrations."""
