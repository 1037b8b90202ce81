"""The command line: `facegan <command>`, a module per command named for it (cli.py assembles
the parser), and the libraries behind three of them: explorer.py (serve's page server),
search.py (sweep's Optuna search) and exercise_notebook.py (exercise's learner notebook).

May import: anything in facegan.
"""
