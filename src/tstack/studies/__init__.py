"""The paper's experiments as code. Each module returns data and never prints; `runner` composes them and
`tstack.report.study_report` renders them."""
