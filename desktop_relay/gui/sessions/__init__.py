"""The sessions table and everything about one session's row: the model (one writer per
row), the view, the columns' table, a row's texts, the relay events that reach rows, and
the larger picture of the selected session."""
