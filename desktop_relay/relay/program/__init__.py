"""The program: several sources composed into one show with one encoder (issue 22)."""
