from msgsuite.messages import Via
from msgsuite.notification import notification_text


def test_text_matches_the_contract_byte_for_byte() -> None:
    text = notification_text(Via.REST, "hola", 12)
    expected = "Se ingresó un registro mediante REST , con el mensaje hola, total de mensajes 12"
    assert text.encode("utf-8") == expected.encode("utf-8")


def test_each_protocol_is_spelled_as_the_contract_says() -> None:
    assert [notification_text(via, "m", 1).split(" ")[5] for via in Via] == ["GRPC", "REST", "RabbitMQ"]


def test_message_is_inserted_verbatim_even_with_braces_and_commas() -> None:
    message = '{total}, {via} , 100% "quoted" <b>x</b>'
    text = notification_text(Via.GRPC, message, 7)
    assert text == f"Se ingresó un registro mediante GRPC , con el mensaje {message}, total de mensajes 7"
