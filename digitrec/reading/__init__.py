"""Reading photos: the two-stage pipeline, digitrec-predict, digitrec-serve, digitrec-export."""
