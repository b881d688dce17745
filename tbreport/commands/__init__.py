"""One module per group of CLI verbs; registered explicitly in ``tbreport.cli``."""
