"""The desktop app's widgets: charts, the pool panel, the log pane, the benchmark tab."""
