"""Page-number pagination whose parameters mean what the schema says.

`page` and `page_size` are integers from 1 (`page_size` up to 1000); anything else is a 400
`invalid` naming the parameter (DRF would quietly fall back to the default page size, and
answer 404 for `page=abc`). A page past the last one stays a 404.
"""

from rest_framework.pagination import PageNumberPagination

from registry.api.query import query_positive_int

MAX_PAGE = 2**31 - 1


class StandardPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 1000
    last_page_strings = ()

    def get_page_size(self, request) -> int:
        return query_positive_int(request, self.page_size_query_param, self.max_page_size) or (
            self.page_size
        )

    def get_page_number(self, request, paginator) -> int:
        return query_positive_int(request, self.page_query_param, MAX_PAGE) or 1

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        limits = {
            self.page_query_param: MAX_PAGE,
            self.page_size_query_param: self.max_page_size,
        }
        for parameter in parameters:
            parameter["schema"] |= {"minimum": 1, "maximum": limits[parameter["name"]]}
        return parameters
