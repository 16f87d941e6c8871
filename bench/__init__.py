"""Every benchmark of lorag (`lorag bench …` calls into these modules); each prints one table against its
named baseline in the same run. Run them on a quiet machine."""
