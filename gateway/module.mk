# gateway/ — (filled in by its component; see DESIGN.md §3)
