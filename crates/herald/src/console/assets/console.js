// The console front end (placeholder until the ui assets land).
