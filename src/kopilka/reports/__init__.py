"""Reports for the programme team: daily rollups, dashboard figures, ROI with a control group."""
