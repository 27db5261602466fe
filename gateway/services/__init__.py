"""Units of work: each public function runs inside the caller's session and never commits
(the route's unit of work does), so a multi-step operation is one transaction."""
