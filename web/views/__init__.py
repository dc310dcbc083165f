"""Web pages, one module per person: public (front door), producer, buyer, auditor, issuing body."""
